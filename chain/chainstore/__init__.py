"""The chain store: tipsets, the heaviest head and its height index, block messages, head changes.

It sits above chain.state (block message lists and receipts are AMTs; a tipset's messages are
deduplicated by sender ID through the parent state), beside the message pool and the state manager.
The blockstore it keeps its blocks in is chain.store, below chain.state.
"""
