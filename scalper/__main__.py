from scalper.cli import main

main()
