"""Automatic operations: the contract and the registry of kinds.

Built-in kinds and plugins (entry point group ``soa.operations``) use the same
contract; see docs/plugins.md.
"""

from engine.operations.contract import (
    CheckpointStore,
    CompanyResources,
    Operation,
    OperationPorts,
    RunContext,
    counts_of,
)
from engine.operations.registry import (
    BUILT_IN_KINDS,
    ENTRY_POINT_GROUP,
    InvalidOperationError,
    InvalidParamsError,
    KindNotAvailableError,
    OperationRegistry,
    UnknownKindError,
)

__all__ = [
    "BUILT_IN_KINDS",
    "ENTRY_POINT_GROUP",
    "CheckpointStore",
    "CompanyResources",
    "InvalidOperationError",
    "InvalidParamsError",
    "KindNotAvailableError",
    "Operation",
    "OperationPorts",
    "OperationRegistry",
    "RunContext",
    "UnknownKindError",
    "counts_of",
]
