"""What TRL's ``reward_funcs`` receive: the self-judge rewards, faults, drift, guards."""
