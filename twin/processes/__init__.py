"""Fleet processes built on the agents: guest movement, update campaigns, injections."""
