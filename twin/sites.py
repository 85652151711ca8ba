"""Sites that share nothing (``operators.per_site: true``): a team and campaigns per site.

Each site of the fleet has its own operator team of ``operators.count`` and rolls each
update campaign over its own hosts, independently of the other sites; clusters (one pod,
one architecture) never span sites. A fleet built of one site (`Fleet` with ``site``)
needs none of this: its one team and its campaigns are already the site's. A fleet of
several sites built whole (the dashboard, a fleet with services across sites) routes
each ticket to the team of the site it concerns, with `SiteTeams`, and keeps one
`Campaign` per site under each campaign's name, with `SiteCampaigns`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twin.agents.operator import OperatorTeam, Priority
from twin.config import Distribution
from twin.processes.updates import Campaign

if TYPE_CHECKING:
    from twin.agents.component import Component
    from twin.agents.host import Host
    from twin.agents.operator import Operator, Task
    from twin.config.schema import UpdateConfig
    from twin.fleet import Fleet


def fleet_sites(fleet: Fleet) -> list[str]:
    """The sites of the fleet's hosts, in host order."""
    return list(dict.fromkeys(fleet.topology.host_site))


def by_site(fleet: Fleet) -> bool:
    """Whether the fleet keeps a team and campaigns per site: ``per_site`` in a fleet of
    several sites (built whole, or one of its sites alone)."""
    several = fleet.config.topology.sites > 1 or len(fleet_sites(fleet)) > 1
    return fleet.config.operators.per_site and several


def operator_teams(fleet: Fleet) -> OperatorTeam | SiteTeams:
    """The fleet's operators: one team, or one per site (operator names prefixed by the
    site, ``s1-op0``)."""
    count = fleet.config.operators.count
    if not by_site(fleet):
        return OperatorTeam(fleet, count)
    sites = fleet_sites(fleet)
    if len(sites) == 1:  # one site of several, built alone
        return OperatorTeam(fleet, count, prefix=f"s{sites[0]}-")
    return SiteTeams(fleet, {s: OperatorTeam(fleet, count, prefix=f"s{s}-") for s in sites})


def campaigns(fleet: Fleet) -> dict[str, Campaign | SiteCampaigns]:
    """Each ``updates:`` entry's campaign, or its campaigns, one per site."""
    if by_site(fleet):
        sites = fleet_sites(fleet)
        return {spec.name: SiteCampaigns(fleet, spec, sites) for spec in fleet.config.updates}
    return {spec.name: Campaign(fleet, spec) for spec in fleet.config.updates}


class SiteTeams:
    """One operator team per site; a ticket goes to the team of its host's, component's
    or campaign's site. Reads as one `OperatorTeam` (its operators and tickets, all
    sites')."""

    update_priority = Priority.UPDATE

    def __init__(self, fleet: Fleet, teams: dict[str, OperatorTeam]) -> None:
        self.fleet = fleet
        self.teams = teams

    @property
    def operators(self) -> list[Operator]:
        return [op for team in self.teams.values() for op in team.operators]

    @property
    def tickets(self) -> list[Any]:
        return [t for team in self.teams.values() for t in team.tickets]

    @property
    def waiting(self) -> int:
        return sum(team.waiting for team in self.teams.values())

    def response_time(self) -> Distribution:
        return next(iter(self.teams.values())).response_time()

    def _of_host(self, host: Host) -> OperatorTeam:
        return self.teams[self.fleet.topology.host_site[host.index]]

    def open(self, task: Task) -> Any:
        """A ticket for the team of the task's site (an update batch: its campaign's)."""
        return self.teams[task.campaign.site].open(task)  # type: ignore[attr-defined]

    def request_reboot(self, host: Host) -> None:
        self._of_host(host).request_reboot(host)

    def request_hardware_repair(self, host: Host) -> None:
        self._of_host(host).request_hardware_repair(host)

    def request_repair(self, component: Component) -> None:
        site = str(self.fleet.topology.graph.nodes[component.name].get("site", ""))
        self.teams.get(site, next(iter(self.teams.values()))).request_repair(component)


class SiteCampaigns:
    """One ``updates:`` entry rolled by each site on its own (a `Campaign` per site)."""

    def __init__(self, fleet: Fleet, spec: UpdateConfig, sites: list[str]) -> None:
        self.spec = spec
        self.by_site = {site: Campaign(fleet, spec, site) for site in sites}

    def start(self) -> None:
        """Start a release at every site now (a scenario's ``start_campaign``)."""
        for campaign in self.by_site.values():
            campaign.start()
