"""The wire: length-prefixed frames (:mod:`.frames`) carrying CBOR items, encoded and
decoded by :mod:`.cbor_encode` and :mod:`.cbor_decode` over the types and registries of
:mod:`.cbor_base`. Packs and tools use the codec as :mod:`pyisolate_runtime.cbor`."""
