from engine.service_host.cli import main

main()
