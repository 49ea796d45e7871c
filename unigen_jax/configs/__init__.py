"""Training configurations (ml_collections), Flax-examples style: ``get_config(arg)``."""
