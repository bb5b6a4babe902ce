"""Torch-free core shared by export, server and client: the model contract, the repository on disk, decisions, atomic writes."""
