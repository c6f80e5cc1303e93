"""autotrain_hydra: LLM fine-tuning runs as versioned Hydra configs.

Importing the package is light (no torch/transformers); heavy modules are imported when a run starts.
"""

__version__ = "0.1.0"
