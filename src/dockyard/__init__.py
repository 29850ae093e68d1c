"""Dockyard: a self-hosted container registry with the features of Azure Container Registry."""

__version__ = "0.1.0"
