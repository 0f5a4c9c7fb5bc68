import sys

from exporters.simulator.cli import main

sys.exit(main())
