import sys

from ae.cli import main

sys.exit(main())
