"""GRPO: the ``grpo`` trainer (:mod:`.trainer`) and its objective, advantages and
batches (:mod:`.algorithm`)."""
