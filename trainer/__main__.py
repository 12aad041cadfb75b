from colorizer_trainer.cli import main

main()
