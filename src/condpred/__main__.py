from condpred.cli import main

main()
