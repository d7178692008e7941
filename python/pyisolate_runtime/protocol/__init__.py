"""The wire: length-prefixed frames (:mod:`.frames`) carrying CBOR items."""
