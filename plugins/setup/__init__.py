"""Standing the system up: profiles, computers, codes and the pseudopotential family."""
