"""The core: tickets, customers, agents, and the services that change them."""
