"""Reinforcement learning trainers: GRPO (:mod:`.grpo`)."""
