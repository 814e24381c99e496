"""The collector: decode, validate against hard limits, enrich, hand to the transport."""
