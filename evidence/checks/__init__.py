"""The verifier's pure checks: values in (what the store returned), findings out; no store, no threads.

    rows     one object's rows checked alone: the hot half, run in worker processes
    chain    a chain's objects stitched in sequence order (ChainWalk): gaps, links, inputs, the signed tail
    listing  which version of which object to verify, what the listing alone shows, windows
    locks    an object's Object Lock and stored checksum against the retention policy
    digests  the sink's digests against each other and the data verified

evidence/walk.py feeds them from a store; a test can feed them from memory.
"""
