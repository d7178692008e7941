"""``python -m pyisolate_runtime``: run the process a pyisolate host started."""

import sys

from .child import main

sys.exit(main())
