import sys

from quasispecies.cli import main

sys.exit(main())
