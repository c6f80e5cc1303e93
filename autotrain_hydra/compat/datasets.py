"""Every use of ``datasets``' non-public API, in one place (checked by ``tests/compat/test_datasets.py``).

``datasets`` assigns the files of a data directory to splits by their names (``train.jsonl``, ``validation.csv``,
``test-00000.parquet``, ...). Its loader reads one file format per split; to read a directory whose split holds
files of several formats whole (no row dropped), the runner needs that assignment itself, which ``datasets`` keeps
in ``datasets.data_files`` (not in its documented API).
"""

from __future__ import annotations

from typing import Dict, List


def files_by_split(folder: str) -> Dict[str, List[str]]:
    """Each split of ``folder`` → its data files, as ``datasets`` assigns them ({} when it holds no data file)."""
    from datasets.data_files import DataFilesDict, get_data_patterns

    try:
        patterns = get_data_patterns(folder)
    except FileNotFoundError:  # datasets' EmptyDatasetError: no data file at all (the loader says so)
        return {}
    return {str(split): list(files) for split, files in DataFilesDict.from_local_or_remote(
        patterns, base_path=folder).items()}
