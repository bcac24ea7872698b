"""The country the scenario generator draws from: departments and their populations, the seven
wholesalers and their footprints, and common names."""

# (department, zone, population in thousands, about 2021). The zone is the region, or the overseas
# basin, in which an officine looks for a depot when its own department has none.
DEPARTMENTS = tuple((code, zone, int(pop)) for zone, entries in {
    "ARA": "01:652 03:335 07:328 15:144 26:516 38:1271 42:765 43:227 63:662 69:1876 73:436 74:826",
    "BFC": "21:534 25:543 39:259 58:204 70:235 71:551 89:335 90:141",
    "BRE": "22:600 29:915 35:1079 56:759",
    "CVL": "18:302 28:431 36:219 37:610 41:329 45:680",
    "COR": "2A:158 2B:182",
    "GES": "08:270 10:310 51:566 52:172 54:733 55:184 57:1044 67:1132 68:767 88:364",
    "HDF": "02:531 59:2608 60:829 62:1466 80:570",
    "IDF": "75:2166 77:1421 78:1448 91:1301 92:1624 93:1644 94:1407 95:1249",
    "NOR": "14:694 27:599 50:495 61:280 76:1255",
    "NAQ": "16:352 17:651 19:240 23:117 24:413 33:1623 40:413 47:331 64:682 79:375 86:438 87:374",
    "OCC": "09:153 11:374 12:279 30:748 31:1400 32:191 34:1176 46:174 48:76 65:229 66:479 81:389 82:260",
    "PDL": "44:1429 49:818 53:307 72:566 85:685",
    "PAC": "04:165 05:141 06:1094 13:2043 83:1076 84:561",
    "ANT": "971:384 972:361 973:285",
    "OI": "974:861 976:279",
}.items() for code, pop in (entry.split(":") for entry in entries.split()))

# The seven grossistes-répartiteurs: (depot code, name, weight, zones served or None for all).
# Footprints are illustrative: national networks everywhere, the CERP cooperatives in their regions.
WHOLESALERS = (
    ("OCP", "OCP Répartition", 3.0, None),
    ("ALL", "Alliance Healthcare Répartition", 2.5, None),
    ("CERP", "CERP Rhin Rhône Méditerranée", 2.5, ("ARA", "BFC", "GES", "PAC", "OCC", "COR")),
    ("AST", "Astera (CERP Rouen)", 2.5, ("NOR", "HDF", "IDF", "CVL", "PDL")),
    ("CBA", "CERP Bretagne Atlantique", 2.5, ("BRE", "PDL", "NAQ", "CVL", "OCC")),
    ("PHX", "Phoenix Pharma", 1.5, None),
    ("SOG", "Sogiphar", 0.8, ("GES", "BFC", "ARA", "IDF")),
)

FIRST_NAMES = (
    "Camille Léa Manon Chloé Emma Inès Jade Louise Sarah Élodie Hélène Sylvie Anne Claire Julie Laetitia "
    "Marie-Laure Anne-Sophie Nadia Émilie Gaëlle Céline Aurélie Sophie Lucie Margaux Fatima Amandine "
    "Thomas Lucas Hugo Louis Arthur Gabriel Raphaël Nathan Théo Julien Pierre Nicolas Antoine Mehdi "
    "Jean-Baptiste Jean-Marc François Stéphane Benoît Jérôme Karim Olivier Marc Yves Noël Ange Paul Mathieu"
).split()
SURNAMES = tuple(name.replace("_", " ") for name in (
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefèvre Michel "
    "Garcia David Bertrand Roux Vincent Fournier Morel Girard André Mercier Dupont Lambert Bonnet François "
    "Martinez Legrand Garnier Faure Rousseau Blanc Guérin Muller Henry Roussel Nicolas Perrin Morin "
    "Mathieu Clément Gauthier Dumont Lopez Fontaine Chevalier Robin Masson Nguyen Da_Silva Le_Goff Le_Gall "
    "Kerbrat Santoni Casanova Paoli Colonna Filippi Peretti Luciani Haddad Benali Cohen N'Diaye Hoarau "
    "Payet Grondin Jean-Louis Marie-Sainte Etienne Schmitt Meyer Weber Klein Caron Aubert Renaud Barbier"
).split())
OFFICINE_NAMES = (
    "Pharmacie du Centre", "Pharmacie de la Gare", "Pharmacie du Marché", "Pharmacie des Halles",
    "Pharmacie de la Mairie", "Pharmacie Principale", "Pharmacie Saint-Michel", "Pharmacie du Parc",
    "Pharmacie du Port", "Pharmacie des Écoles", "Pharmacie de l'Église", "Grande Pharmacie",
)
