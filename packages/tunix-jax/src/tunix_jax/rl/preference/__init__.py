"""Preference optimisation on pairs of completions: the ``dpo``, ``simpo`` and ``orpo``
trainers (:mod:`.trainer`), their losses (:mod:`.losses`) and their data (:mod:`.data`)."""
