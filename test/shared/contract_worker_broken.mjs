// A worker whose module fails while loading: the Runtime must report it through onError.
throw new Error("this worker module fails on purpose");
