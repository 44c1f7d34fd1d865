"""Training: losses with their gradients, and optimizers that step like torch.optim."""
