from vramlint.cli.main import main

raise SystemExit(main())
