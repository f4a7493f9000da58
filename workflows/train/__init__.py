"""Training: one NequIP run (TrainWorkChain) and a seeded committee of them (CommitteeWorkChain)."""
