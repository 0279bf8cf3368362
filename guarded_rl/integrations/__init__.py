"""Guard rails for training loops people already have: plain PyTorch (`integrations.torch`)."""
