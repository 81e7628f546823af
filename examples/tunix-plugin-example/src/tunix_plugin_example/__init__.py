"""An example tunix plugin: the ``digit-sum`` dataset and the ``answer-brevity`` evaluator."""
