"""autotrain_hydra: LLM fine-tuning runs as versioned Hydra configs.

Importing the package is light (no torch/transformers); heavy modules are imported when a run starts.
"""

__version__ = "0.1.0"


def _expose_hydra_plugin() -> None:
    """Hydra looks for sweepers in the ``hydra_plugins`` namespace by walking its directories. A wheel puts ours
    (``hydra_plugins/autotrain_hydra_sweeper``) beside the others; an editable install (``pip install -e .``) maps it
    through an import hook that this walk cannot see, so the checkout's folder is added here."""
    import os

    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hydra_plugins")
    if not os.path.isdir(os.path.join(root, "autotrain_hydra_sweeper")):
        return
    try:
        import hydra_plugins
    except ImportError:  # hydra-core is not installed: nothing to expose
        return
    if root not in list(hydra_plugins.__path__):
        hydra_plugins.__path__.append(root)


_expose_hydra_plugin()
