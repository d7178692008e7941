"""Values that need more than plain CBOR: tensors and arrays through shared memory
(:mod:`pyisolate_runtime.tensors` is their API), and the io-type checks of node values
(:mod:`.io_check`, used by the generated :mod:`pyisolate_runtime.io_types_gen`)."""
