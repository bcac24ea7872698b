"""Every refusal a service gives: its fields, its French sentence (`str()`) and the HTTP status it maps to.

The console renders them by class and the command line prints them as they are; neither reads their
text. A new refusal is one class here, raised by its service.

One module, over 300 lines, on purpose: every sentence a person may be told side by side, so that a new
refusal is written like its neighbours and a reader checks the French of all of them in one place.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar

from pipeline.domain.french import french_date, number, vials
from pipeline.domain.vocabulary import EmailState

from . import ServiceError

refusal = dataclass(eq=False, repr=False)  # exceptions compare by identity, and print by their sentence


# What a request names and the database does not hold.

@refusal
class UnknownSession(ServiceError):
    session_id: str
    status: ClassVar[int] = 404
    title: ClassVar[str] = "Session inconnue"

    def __str__(self) -> str:
        return f"Session inconnue : {self.session_id}."


@refusal
class NoRun(ServiceError):
    """The session has no run yet (`version` None), or not that version."""
    session_id: str
    version: int | None = None
    status: ClassVar[int] = 404
    title: ClassVar[str] = "Version inconnue"

    def __str__(self) -> str:
        if self.version is None:
            return f"La session {self.session_id} n'a pas encore de version : elle n'est pas close."
        return f"La session {self.session_id} n'a pas de version {self.version}."


@refusal
class UnknownRun(ServiceError):
    run: int
    status: ClassVar[int] = 404
    title: ClassVar[str] = "Version inconnue"

    def __str__(self) -> str:
        return f"Aucune version n° {self.run} n'est enregistrée."


@refusal
class UnknownOrder(ServiceError):
    order_id: str
    session_id: str | None = None
    status: ClassVar[int] = 404
    title: ClassVar[str] = "Ligne inconnue"

    def __str__(self) -> str:
        if self.session_id is None:
            return f"Ligne inconnue : {self.order_id}."
        return f"Ligne inconnue : {self.order_id} n'est pas une ligne de la session {self.session_id}."


@refusal
class OrderInSeveralSessions(ServiceError):
    order_id: str
    sessions: tuple[str, ...]
    title: ClassVar[str] = "Ligne ambiguë"

    def __str__(self) -> str:
        return (f"La ligne {self.order_id} existe dans les sessions {', '.join(self.sessions)} : "
                "précisez la session (--session).")


@refusal
class OfficineNotFound(ServiceError):
    finess: str
    session_id: str | None = None
    status: ClassVar[int] = 404
    title: ClassVar[str] = "Officine inconnue"

    def __str__(self) -> str:
        where = "aucune session enregistrée" if self.session_id is None else f"la session {self.session_id}"
        return f"Aucune officine de numéro FINESS {self.finess} dans {where}."


@refusal
class UnknownEmail(ServiceError):
    """No such email, or none of the officine it was asked through: 404 either way."""
    outbox_id: int
    status: ClassVar[int] = 404
    title: ClassVar[str] = "Email inconnu"

    def __str__(self) -> str:
        return f"Aucun email n° {self.outbox_id} ici."


@refusal
class SearchTooShort(ServiceError):
    least: int

    def __str__(self) -> str:
        return f"Donnez au moins {self.least} caractères du nom."


# Who asks, and why: kept with what they do.

@refusal
class OperatorRequired(ServiceError):
    def __str__(self) -> str:
        return "Un nom d'opérateur est obligatoire (--operator) : il est gardé avec ce qui est fait."


@refusal
class ReasonRequired(ServiceError):
    def __str__(self) -> str:
        return "Un motif est obligatoire (--reason) : il est gardé avec ce qui est fait."


# A session or a run that is not in the state the request needs.

@refusal
class SessionLoadedOtherwise(ServiceError):
    session_id: str
    status: ClassVar[int] = 409

    def __str__(self) -> str:
        return (f"La session {self.session_id} est déjà chargée avec d'autres données : changez-la par une "
                "réallocation (vialflow reallocate), ou utilisez une autre base de données.")


@refusal
class SessionHeld(ServiceError):
    session_id: str
    holder: str
    status: ClassVar[int] = 409

    def __str__(self) -> str:
        return (f"La session {self.session_id} est en cours de traitement par une autre commande vialflow "
                f"({self.holder}) : attendez qu'elle finisse, ou arrêtez-la et relancez cette commande.")


@refusal
class SessionNotClosed(ServiceError):
    session_id: str
    status: ClassVar[int] = 409

    def __str__(self) -> str:
        return f"La session {self.session_id} n'est pas encore close : rien à réallouer ni à purger."


@refusal
class RunUnderWay(ServiceError):
    session_id: str
    version: int
    status: ClassVar[int] = 409

    def __str__(self) -> str:
        return (f"Session {self.session_id} : la version {self.version} est encore en cours ; réessayez quand elle "
                "sera terminée.")


@refusal
class ConcurrentReallocation(ServiceError):
    session_id: str
    status: ClassVar[int] = 409

    def __str__(self) -> str:
        return (f"Une autre réallocation de la session {self.session_id} vient d'être enregistrée : consultez ses "
                "versions et recommencez.")


# A reallocation's changes that do not fit the session, or what has left the depots (R10, R11).

@refusal
class UnknownVaccine(ServiceError):
    vaccine: str
    known: tuple[str, ...]
    field: str = "supply"  # the changes file's table that names it: supply, allocation or remainders

    def __str__(self) -> str:
        what = {"allocation": "Politique d'attribution (allocation)", "remainders": "Reliquats (remainders)"}.get(
            self.field, "Stock")
        return f"{what} : vaccin inconnu « {self.vaccine} » (vaccins de la session : {', '.join(self.known)})."


@refusal
class UnknownOrderInChanges(ServiceError):
    order_id: str
    session_id: str

    def __str__(self) -> str:
        return f"Ligne inconnue : {self.order_id} n'est pas une ligne de la session {self.session_id}."


@refusal
class UnknownDepot(ServiceError):
    depot_id: str

    def __str__(self) -> str:
        return f"Jours de dépôt : dépôt inconnu {self.depot_id}."


@refusal
class CancelAfterDelivery(ServiceError):
    order_id: str
    effective: dt.date

    def __str__(self) -> str:
        return (f"Annulation impossible : la ligne {self.order_id} a une livraison datée du "
                f"{french_date(self.effective)} ou avant (elle a quitté le dépôt).")


@refusal
class SupplyBelowDelivered(ServiceError):
    vaccine: str
    supply: int
    delivered: int
    effective: dt.date

    def __str__(self) -> str:
        return (f"Stock : {vials(self.supply)} de {self.vaccine}, c'est moins que les {number(self.delivered)} déjà "
                f"livrés au {french_date(self.effective)} ou avant.")


@refusal
class LineBelowDelivered(ServiceError):
    order_id: str
    vaccine: str
    allocated: int
    delivered: int
    effective: dt.date

    def __str__(self) -> str:
        return (f"Stock : la ligne {self.order_id} recevrait {vials(self.allocated)} de {self.vaccine}, moins que les "
                f"{number(self.delivered)} déjà livrés au {french_date(self.effective)} ou avant ; donnez plus de "
                "stock à ce vaccin.")


@refusal
class UnknownReceiver(ServiceError):
    order_id: str

    def __str__(self) -> str:
        return (f"Redistribution de {self.order_id} : le professionnel qui reçoit n'est pas dans le répertoire "
                "de la session.")


@refusal
class TooManyRedistributed(ServiceError):
    order_id: str
    asked: int
    available: int
    effective: dt.date

    def __str__(self) -> str:
        return (f"Redistribution de {self.order_id} : {vials(self.asked)} demandés, seuls {vials(self.available)} "
                f"ont été livrés une semaine ou plus avant le {french_date(self.effective)} sans être déjà "
                "redistribués.")


# The outbox and the retention of personal data.

@refusal
class NotResendable(ServiceError):
    state: str

    def __str__(self) -> str:
        return (f"Seuls les emails en {EmailState.FAILED.short} ou d'{EmailState.UNKNOWN.short} sont renvoyés, "
                f"pas ceux à l'état « {EmailState.labelled(self.state)} ».")


@refusal
class NegativeRetention(ServiceError):
    keep_days: int

    def __str__(self) -> str:
        return f"La durée de conservation (--keep-days) est un nombre de jours positif ou nul, pas {self.keep_days}."


@refusal
class EmailsNotSettled(ServiceError):
    session_id: str
    waiting: int
    status: ClassVar[int] = 409

    def __str__(self) -> str:
        return (f"La session {self.session_id} a {number(self.waiting)} email(s) pas encore traité(s) : purgez-la "
                f"quand chacun est {EmailState.SENT.short}, en {EmailState.FAILED.short} ou "
                f"d'{EmailState.UNKNOWN.short}.")


@refusal
class RetentionNotOver(ServiceError):
    session_id: str
    until: dt.datetime
    keep_days: int
    status: ClassVar[int] = 409

    def __str__(self) -> str:
        return (f"La session {self.session_id} est conservée jusqu'au {self.until:%Y-%m-%d %H:%M} UTC "
                f"({self.keep_days} jours après le dernier de ses emails).")


# The self-service space.

@refusal
class LinkRefused(ServiceError):
    """A one-time sign-in link unknown, expired or already used (one sentence for all three)."""
    status: ClassVar[int] = 403
    title: ClassVar[str] = "Lien de connexion invalide"

    def __str__(self) -> str:
        return ("Ce lien de connexion n'est plus valable : il a expiré (15 minutes) ou a déjà servi. "
                "Demandez-en un nouveau.")


@refusal
class LinksHeld(ServiceError):
    """Too many links asked lately from this address or for this officine."""
    retry_after: int
    status: ClassVar[int] = 429
    title: ClassVar[str] = "Trop de demandes"

    def __str__(self) -> str:
        minutes = -(-self.retry_after // 60)
        return f"Trop de liens de connexion demandés : réessayez dans {minutes} minute{'s' if minutes > 1 else ''}."


@refusal
class StartsHeld(ServiceError):
    """Too many Pro Santé Connect sign-ins started lately from this address."""
    retry_after: int
    status: ClassVar[int] = 429
    title: ClassVar[str] = "Trop de demandes"

    def __str__(self) -> str:
        minutes = -(-self.retry_after // 60)
        return (f"Trop de connexions par Pro Santé Connect commencées depuis cette adresse : réessayez dans "
                f"{minutes} minute{'s' if minutes > 1 else ''}.")


@refusal
class StartsFull(ServiceError):
    """As many Pro Santé Connect sign-ins under way as the console keeps, from every address."""
    retry_after: int
    status: ClassVar[int] = 503
    title: ClassVar[str] = "Service occupé"

    def __str__(self) -> str:
        minutes = -(-self.retry_after // 60)
        return (f"Trop de connexions par Pro Santé Connect sont en cours : réessayez dans "
                f"{minutes} minute{'s' if minutes > 1 else ''}.")


@refusal
class SignInFailed(ServiceError):
    """The OpenID Connect sign-in did not prove who is signing in (`why` is a code for the journal)."""
    why: str
    status: ClassVar[int] = 403
    title: ClassVar[str] = "Connexion refusée"

    def __str__(self) -> str:
        return "La connexion par Pro Santé Connect a échoué : recommencez depuis la page de connexion."


@refusal
class NoActivityHere(ServiceError):
    """Signed in by Pro Santé Connect, but neither a pharmacist of an officine of the registers nor a
    professional named on them."""
    status: ClassVar[int] = 403
    title: ClassVar[str] = "Aucune livraison à votre nom"

    def __str__(self) -> str:
        return ("Votre identité est reconnue, mais aucune officine où vous exercez ni aucune commande à votre nom "
                "ne figure dans les registres des sessions de commande.")
