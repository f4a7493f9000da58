"""Labelled frames and datasets: the layout every stage reads and writes (plain Python, no AiiDA)."""

from .born import BORN_CHARGE_CONVENTION, asr_corrected, asr_violation
from .dataset import FORMAT_VERSION, Dataset
from .frame import Frame

__all__ = ('BORN_CHARGE_CONVENTION', 'FORMAT_VERSION', 'Dataset', 'Frame', 'asr_corrected', 'asr_violation')
