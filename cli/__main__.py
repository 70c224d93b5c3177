from sealtrail.cli.main import main

main()
