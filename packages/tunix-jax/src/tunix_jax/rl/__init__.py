"""Reinforcement learning trainers: GRPO (:mod:`.grpo`) and preference optimisation,
DPO, SimPO and ORPO (:mod:`.preference`)."""
