"""Node packs in this process: importing them (:mod:`.loader`), their ``/object_info``
entries (:mod:`.info`), running their nodes (:mod:`.execute`) and the ``$nodes`` service
(:mod:`.service`); :mod:`.comfy_bridge` is what the ComfyUI shims share."""
