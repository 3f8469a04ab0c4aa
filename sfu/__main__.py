from sfu.cli import main

raise SystemExit(main())
