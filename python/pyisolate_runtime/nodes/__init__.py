"""Node packs in this process: importing them (:mod:`.loader`), their ``/object_info``
entries (:mod:`.nodes_info`), running their nodes (:mod:`.nodes_exec`) and the ``$nodes``
service (:mod:`.nodes_service`); :mod:`.comfy_bridge` is what the ComfyUI shims share."""
