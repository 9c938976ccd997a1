import sys

from diagnostic.cli import main

sys.exit(main())
