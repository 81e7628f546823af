from tunix_eval.tokens import approx_token_count


def test_counts_words_digits_and_punctuation():
    assert approx_token_count("") == 0
    assert approx_token_count("   \n\t ") == 0
    assert approx_token_count("Hello world") == 2
    # Every digit is a token, as in Gemma's vocabulary; "," and "." count once each.
    assert approx_token_count("1,234.5") == 7
    assert approx_token_count("<answer>42</answer>") == 9  # < answer > 4 2 < / answer >
    assert approx_token_count("naïve café") == 2  # letters of any script form one run


def test_grows_with_the_text():
    step = "Add 12 and 30 to get 42."
    assert approx_token_count(step * 3) == 3 * approx_token_count(step)
