"""The states of a storage deal, as the client and the provider track it, and which may follow which.

The numbers and names are go-fil-markets' `StorageDealStatus` (storagemarket/dealstatus.go), what Lotus's
`ClientGetDealStatus(n)` names and `lotus client list-deals` shows, so that scripts written for Lotus read
filpy's deals the same way. filpy walks a deal through a subset of them, in this order:

| step | client | provider |
| --- | --- | --- |
| escrow | ReserveClientFunds, ClientFunding (AddBalance in flight) | ReserveProviderFunds, ProviderFunding |
| proposed | FundsReserved: the proposal is on its way | Validating: the checks run |
| accepted | ProposalAccepted | ProposalAccepted |
| transferring | Transferring (WaitingForData for an offline deal) | Transferring / WaitingForData |
| verifying | VerifyData | VerifyData: the piece CID is recomputed |
| publishing | Publishing | Publish (queued for the batch), Publishing (message sent) |
| published | AwaitingPreCommit: on chain with a deal ID, checked by the client | (the provider moves on) |
| staged | Staged: in a sector, with its inclusion proof | Staged |
| sealing | Sealing | Sealing |
| active | Active: the client checked the sector on chain and the proof | Active |
| end | Expired, Slashed | Expired, Slashed |

Refusals end in ProposalRejected, failures in Error; each keeps its reason in the deal's message.
"""

from enum import IntEnum
from typing import Final


class StorageDealStatus(IntEnum):
    """go-fil-markets storagemarket.StorageDealStatus (iota order)."""

    StorageDealUnknown = 0
    StorageDealProposalNotFound = 1
    StorageDealProposalRejected = 2
    StorageDealProposalAccepted = 3
    StorageDealStaged = 4
    StorageDealSealing = 5
    StorageDealFinalizing = 6
    StorageDealActive = 7
    StorageDealExpired = 8
    StorageDealSlashed = 9
    StorageDealRejecting = 10
    StorageDealFailing = 11
    StorageDealFundsReserved = 12
    StorageDealCheckForAcceptance = 13
    StorageDealValidating = 14
    StorageDealAcceptWait = 15
    StorageDealStartDataTransfer = 16
    StorageDealTransferring = 17
    StorageDealWaitingForData = 18
    StorageDealVerifyData = 19
    StorageDealReserveProviderFunds = 20
    StorageDealReserveClientFunds = 21
    StorageDealProviderFunding = 22
    StorageDealClientFunding = 23
    StorageDealPublish = 24
    StorageDealPublishing = 25
    StorageDealError = 26
    StorageDealProviderTransferAwaitRestart = 27
    StorageDealClientTransferRestart = 28
    StorageDealAwaitingPreCommit = 29
    StorageDealTransferQueued = 30


S = StorageDealStatus

# go-fil-markets' DealStatesDescriptions and DealStatesDurations, for DealInfo.DealStages.
DESCRIPTIONS: Final[dict[StorageDealStatus, str]] = {
    S.StorageDealUnknown: "Unknown",
    S.StorageDealProposalNotFound: "Proposal not found",
    S.StorageDealProposalRejected: "Proposal rejected",
    S.StorageDealProposalAccepted: "Proposal accepted",
    S.StorageDealAcceptWait: "AcceptWait",
    S.StorageDealStartDataTransfer: "Starting data transfer",
    S.StorageDealStaged: "Staged",
    S.StorageDealAwaitingPreCommit: "Awaiting a PreCommit message on chain",
    S.StorageDealSealing: "Sealing",
    S.StorageDealActive: "Active",
    S.StorageDealExpired: "Expired",
    S.StorageDealSlashed: "Slashed",
    S.StorageDealRejecting: "Rejecting",
    S.StorageDealFailing: "Failing",
    S.StorageDealFundsReserved: "FundsReserved",
    S.StorageDealCheckForAcceptance: "Checking for deal acceptance",
    S.StorageDealValidating: "Validating",
    S.StorageDealTransferring: "Transferring",
    S.StorageDealWaitingForData: "Waiting for data",
    S.StorageDealVerifyData: "Verifying data",
    S.StorageDealReserveProviderFunds: "Reserving provider funds",
    S.StorageDealReserveClientFunds: "Reserving client funds",
    S.StorageDealProviderFunding: "Provider funding",
    S.StorageDealClientFunding: "Client funding",
    S.StorageDealPublish: "Publish",
    S.StorageDealPublishing: "Publishing",
    S.StorageDealError: "Error",
    S.StorageDealFinalizing: "Finalizing",
    S.StorageDealClientTransferRestart: "Client transfer restart",
    S.StorageDealProviderTransferAwaitRestart: "ProviderTransferAwaitRestart",
    S.StorageDealTransferQueued: "Transfer queued",
}

_FEW_MINUTES: Final = "a few minutes"
_QUICK: Final = frozenset(
    {
        S.StorageDealProposalAccepted,
        S.StorageDealStaged,
        S.StorageDealAwaitingPreCommit,
        S.StorageDealFundsReserved,
        S.StorageDealValidating,
        S.StorageDealTransferring,
        S.StorageDealWaitingForData,
        S.StorageDealVerifyData,
        S.StorageDealReserveProviderFunds,
        S.StorageDealReserveClientFunds,
        S.StorageDealProviderFunding,
        S.StorageDealClientFunding,
        S.StorageDealPublish,
        S.StorageDealPublishing,
    }
)


def expected_duration(state: StorageDealStatus) -> str:
    if state in _QUICK:
        return _FEW_MINUTES
    if state == S.StorageDealSealing:
        return "a few hours"
    return ""


def state_name(code: int) -> str:
    """ClientGetDealStatus: the name of a status number; ValueError for an unknown number."""
    try:
        return StorageDealStatus(code).name
    except ValueError:
        raise ValueError(f"no storage deal status {code} (known: 0 to {len(S) - 1})") from None


# States after which nothing changes any more.
TERMINAL: Final = frozenset(
    {S.StorageDealExpired, S.StorageDealSlashed, S.StorageDealError, S.StorageDealProposalRejected}
)

# The client's path (see the module's docstring); a failure (Error) or a refusal may end any
# non-terminal state.
CLIENT_TRANSITIONS: Final[dict[StorageDealStatus, frozenset[StorageDealStatus]]] = {
    state: frozenset(nexts)
    for state, nexts in {
        S.StorageDealReserveClientFunds: {S.StorageDealClientFunding, S.StorageDealFundsReserved},
        S.StorageDealClientFunding: {S.StorageDealFundsReserved},
        S.StorageDealFundsReserved: {S.StorageDealProposalAccepted},
        S.StorageDealProposalAccepted: {
            S.StorageDealTransferring,
            S.StorageDealWaitingForData,
            S.StorageDealVerifyData,
            S.StorageDealPublishing,
            S.StorageDealAwaitingPreCommit,
        },
        S.StorageDealTransferring: {
            S.StorageDealVerifyData,
            S.StorageDealPublishing,
            S.StorageDealAwaitingPreCommit,
        },
        S.StorageDealWaitingForData: {
            S.StorageDealVerifyData,
            S.StorageDealPublishing,
            S.StorageDealAwaitingPreCommit,
        },
        S.StorageDealVerifyData: {S.StorageDealPublishing, S.StorageDealAwaitingPreCommit},
        S.StorageDealPublishing: {S.StorageDealAwaitingPreCommit},
        S.StorageDealAwaitingPreCommit: {S.StorageDealStaged, S.StorageDealSealing, S.StorageDealActive},
        S.StorageDealStaged: {S.StorageDealSealing, S.StorageDealActive},
        S.StorageDealSealing: {S.StorageDealActive},
        S.StorageDealActive: {S.StorageDealExpired, S.StorageDealSlashed},
    }.items()
}

PROVIDER_TRANSITIONS: Final[dict[StorageDealStatus, frozenset[StorageDealStatus]]] = {
    state: frozenset(nexts)
    for state, nexts in {
        S.StorageDealValidating: {S.StorageDealProposalAccepted},
        S.StorageDealProposalAccepted: {S.StorageDealTransferring, S.StorageDealWaitingForData},
        S.StorageDealTransferring: {S.StorageDealVerifyData},
        S.StorageDealWaitingForData: {S.StorageDealVerifyData},
        S.StorageDealVerifyData: {S.StorageDealReserveProviderFunds},
        S.StorageDealReserveProviderFunds: {S.StorageDealProviderFunding, S.StorageDealPublish},
        S.StorageDealProviderFunding: {S.StorageDealPublish},
        S.StorageDealPublish: {S.StorageDealPublishing},
        S.StorageDealPublishing: {S.StorageDealStaged},
        S.StorageDealStaged: {S.StorageDealSealing, S.StorageDealActive},
        S.StorageDealSealing: {S.StorageDealActive},
        S.StorageDealActive: {S.StorageDealExpired, S.StorageDealSlashed},
    }.items()
}

_ENDINGS: Final = frozenset({S.StorageDealError, S.StorageDealSlashed, S.StorageDealExpired})


def reachable(
    table: dict[StorageDealStatus, frozenset[StorageDealStatus]], state: StorageDealStatus
) -> frozenset[StorageDealStatus]:
    """state and every state the table's path leads to from it (not the failures any state may take)."""
    found = {state}
    frontier = [state]
    while frontier:
        for nxt in table.get(frontier.pop(), frozenset()):
            if nxt not in found:
                found.add(nxt)
                frontier.append(nxt)
    return frozenset(found)


class IllegalDealTransition(RuntimeError):
    """A move the tables do not allow: a bug in the deal code, never a condition of the network."""


def check_transition(
    table: dict[StorageDealStatus, frozenset[StorageDealStatus]],
    old: StorageDealStatus,
    new: StorageDealStatus,
) -> None:
    """Refuse a move the table does not list. Any live state may fail (Error); a deal on chain may be
    slashed or expire at any point of sealing (its sector terminated, its start epoch passed)."""
    if old in TERMINAL:
        raise IllegalDealTransition(f"a deal in {old.name} cannot move to {new.name}")
    if new in table.get(old, frozenset()) or new == S.StorageDealError:
        return
    if new == S.StorageDealProposalRejected and old in (S.StorageDealFundsReserved, S.StorageDealValidating):
        return
    if new in _ENDINGS and old in _ON_CHAIN:
        return
    raise IllegalDealTransition(f"a deal cannot go from {old.name} to {new.name}")


# States in which the deal is published on chain (it can time out, be slashed, or expire).
_ON_CHAIN: Final = frozenset(
    {
        S.StorageDealAwaitingPreCommit,
        S.StorageDealStaged,
        S.StorageDealSealing,
        S.StorageDealActive,
    }
)


# Boost's deal checkpoints (storagemarket/types/dealcheckpoints), what DealStatus.Status says.
def boost_checkpoint(state: StorageDealStatus) -> str:
    """The Boost checkpoint a provider state has reached (DealStatusResponse.DealStatus.Status)."""
    if state in (S.StorageDealActive, S.StorageDealExpired, S.StorageDealSlashed):
        return "Complete"
    if state in (S.StorageDealStaged, S.StorageDealSealing):
        return "AddedPiece"
    if state == S.StorageDealPublishing:
        return "Published"
    if state in (
        S.StorageDealVerifyData,
        S.StorageDealReserveProviderFunds,
        S.StorageDealProviderFunding,
        S.StorageDealPublish,
    ):
        return "Transferred"
    return "Accepted"
