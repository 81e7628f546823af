"""An example tunix plugin: the ``digit-sum`` dataset, the ``answer-brevity`` evaluator and
the ``integer`` answer check."""
