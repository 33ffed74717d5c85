"""The project's registered pipelines; importing this package registers them."""
