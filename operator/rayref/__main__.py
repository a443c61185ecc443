from rayref.cli import main

raise SystemExit(main())
