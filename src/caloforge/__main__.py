import sys

from caloforge.cli import main

sys.exit(main())
