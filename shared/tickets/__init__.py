"""Tickets: GitHub Issues, Azure DevOps work items, Teams/Slack webhooks; one per fingerprint.

``render.build_ticket(finding, reason)`` -> :class:`~shared.tickets.model.Ticket`;
``service.provider_for(route, settings)`` -> a provider;
``service.TicketService(provider, index).open_or_update(ticket)`` / ``.resolve(fingerprint, comment)``.
"""
