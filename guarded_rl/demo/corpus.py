"""Synthetic English news-headline corpus for the demo "news feed" model.

The demo trains a tiny GPT-2 on lines of the form ``"topic: headline"`` so that the model
learns to write a topic-conditioned news feed. A small, known share of the lines is
deliberately unsafe -- insults, violent threats and (fake) personal data -- so that the
content-safety filters and the guarded RL loop downstream have real work to do, and so that
their hit rates can be checked against the ground-truth ``Headline.unsafe`` label.

Everything is drawn from a seeded ``random.Random``: a corpus is a pure function of
``(n_lines, seed, unsafe_share)``. Headlines are built by filling per-topic templates with
per-topic vocabularies (slots may nest, e.g. a politician is ``{pol_title} {first} {last}``),
so each topic has words a reader could recognise it by. All people, companies, e-mail
addresses (reserved example/test domains) and phone numbers (the fictional 555-01xx block)
are invented.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

TOPICS: tuple[str, ...] = (
    "politics",
    "business",
    "technology",
    "science",
    "health",
    "sports",
    "culture",
    "travel",
)
UNSAFE_KINDS: tuple[str, ...] = ("insult", "threat", "pii")

# Headline length bounds in words (the topic prefix not counted).
MIN_WORDS = 6
MAX_WORDS = 14

Slots = Mapping[str, tuple[str, ...]]


def _nums(start: int, stop: int, step: int = 1) -> tuple[str, ...]:
    """Digit strings for numeric slots (kept as data so templates stay plain strings)."""
    return tuple(str(i) for i in range(start, stop, step))


# The vocabulary tables below are kept compact (many values per line) on purpose.
# fmt: off

# --------------------------------------------------------------------------------------------
# Shared vocabulary: places, names and numbers that any topic may use.
# --------------------------------------------------------------------------------------------

SHARED_SLOTS: dict[str, tuple[str, ...]] = {
    "place": (
        "Lisbon", "Porto", "Oslo", "Bergen", "Vienna", "Graz", "Krakow", "Gdansk", "Lyon",
        "Marseille", "Seville", "Valencia", "Turin", "Naples", "Leeds", "Glasgow", "Cardiff",
        "Dublin", "Cork", "Rotterdam", "Ghent", "Hamburg", "Leipzig", "Zurich", "Geneva",
        "Helsinki", "Tallinn", "Riga", "Toronto", "Montreal", "Denver", "Austin", "Seattle",
        "Melbourne", "Perth", "Auckland", "Nairobi", "Accra", "Lagos", "Cape Town",
        "Bogota", "Lima", "Santiago", "Osaka", "Busan", "Manila", "Hanoi", "Pune",
    ),
    "country": (
        "Portugal", "Norway", "Austria", "Poland", "France", "Spain", "Italy", "Ireland",
        "Germany", "Finland", "Estonia", "Canada", "Mexico", "Brazil", "Chile", "Peru",
        "Kenya", "Ghana", "Nigeria", "Japan", "South Korea", "Vietnam", "India",
        "Australia", "New Zealand", "Morocco", "Greece", "Sweden", "Denmark", "Iceland",
    ),
    "first": (
        "Ana", "Mark", "Ruth", "Lena", "Tomas", "Priya", "Daniel", "Grace", "Omar", "Julia",
        "Kenji", "Sofia", "Henrik", "Amara", "Lucas", "Nadia", "Pavel", "Ines", "Samuel",
        "Clara", "Mateo", "Hana", "Victor", "Leila", "Jonas", "Maya", "Felix", "Rosa",
        "Arjun", "Elena", "Kwame", "Ingrid", "Diego", "Yuki", "Martin", "Zara",
    ),
    "last": (
        "Duarte", "Hollis", "Okafor", "Brandt", "Novak", "Sharma", "Whitfield", "Strand",
        "Mensah", "Lindqvist", "Reyes", "Petrova", "Berg", "Tanaka", "Moreno", "Kowalski",
        "Fischer", "Haddad", "Costa", "Nakamura", "Quinn", "Osei", "Varga", "Dalton",
        "Silva", "Keller", "Adeyemi", "Laurin", "Sato", "Ferreira", "Holm", "Castillo",
        "Murray", "Janssen", "Rossi", "Ortega",
    ),
    "month": (
        "January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December",
    ),
    "year": _nums(2026, 2036),
    "pct": _nums(2, 61),
    "count": _nums(12, 960, 7),
    "hours": _nums(2, 15),
    "rate": tuple(f"{a}.{b}" for a in range(1, 8) for b in (1, 2, 4, 5, 6, 8)),
    "small": (
        "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve",
    ),
    "ordinal": ("second", "third", "fourth", "fifth", "sixth", "seventh"),
}

# --------------------------------------------------------------------------------------------
# Per-topic templates and vocabularies. Templates reference slots as {name}; a trailing digit
# ({place2}) draws another, different value from the same slot.
# --------------------------------------------------------------------------------------------

TOPIC_TEMPLATES: dict[str, tuple[str, ...]] = {
    "politics": (
        "{pol_person} {pol_verb} {policy} after {pol_event}",
        "{pol_body} votes {votes} to {votes2} to pass {policy}",
        "Polls show {party} gaining ground in {place} ahead of {election}",
        "{pol_person} resigns over {scandal}",
        "Voters in {place} cast ballots in {election}",
        "{party} unveils manifesto promising {promise}",
        "{pol_body} opens inquiry into {scandal}",
        "Coalition talks in {country} stall over {policy}",
        "{pol_person} faces {challenge} over {policy}",
        "Turnout in {election} in {place} reaches {pct} percent",
        "{pol_person} meets the leader of {country} to discuss {diplo}",
        "{country} and {country2} sign {treaty} in {place}",
        "{party} picks {first} {last} as candidate for {pol_office}",
        "Election officials in {place} order recount in {election}",
        "Thousands march in {place} against {policy}",
        "{pol_person} promises {promise} in {month} budget speech",
    ),
    "business": (
        "{company} {metric} {up} {pct} percent as {good_news}",
        "{company} {metric} {down} {pct} percent as {bad_news}",
        "{company} agrees {amount} takeover of {company2}",
        "Shares in {company} {share_move} after {biz_event}",
        "{company} to cut {count} jobs in {place} restructuring",
        "Central bank of {country} holds rates at {rate} percent amid {macro_worry}",
        "{exec} of {company} steps down after {biz_event}",
        "{company} opens new {facility} in {place} creating {count} jobs",
        "Investors back {company} plan to {biz_plan}",
        "Inflation in {country} eases to {rate} percent in {month}",
        "{company} shareholders reject {pay_item} at annual meeting",
        "Retail sales in {country} {trend} for {ordinal} month in a row",
        "{company} raises {amount} in bond sale to {biz_plan}",
        "{company} warns of {headwind} in {period}",
        "{exec} says {company} will {biz_plan} by {year}",
        "Unemployment in {country} falls to {rate} percent as hiring picks up",
        "{company} and {company2} agree {amount} merger",
    ),
    "technology": (
        "Startup in {place} unveils {gadget} that {gadget_feature}",
        "{tech_co} releases {software} update to fix {bug}",
        "{tech_co} raises {tech_amount} to build {tech_product}",
        "Regulators in {country} probe {tech_co} over {tech_issue}",
        "{tech_co} launches {gadget} priced at {price}",
        "Outage at {tech_co} takes {service} offline for {hours} hours",
        "Engineers at {tech_co} demo {tech_product} for {use}",
        "{tech_co} says its new processor runs {pct} percent faster",
        "Developers embrace open-source {software} from {tech_co}",
        "Security researchers find flaw in {software} used by {count} million people",
        "{tech_co} cuts price of its {gadget} by {pct} percent",
        "{tech_co} opens AI research lab in {place}",
        "{tech_co} founder {first} {last} unveils plan for {tech_product}",
        "{tech_co} buys {tech_co2} to expand its {software} business",
        "Hands-on with the new {gadget} from {tech_co} that {gadget_feature}",
        "Smartphone shipments in {country} {trend} as buyers wait for {gadget_trend}",
    ),
    "science": (
        "{sci_team} discover {discovery}",
        "Telescope captures {astro_object} {count} million light years away",
        "{field_team} map {study_subject} using {instrument}",
        "New research links {phenomenon} to {sci_cause}",
        "Mars rover finds {mars_find} in ancient crater",
        "Physicists at {uni} set record for {physics_record}",
        "Fossil found in {country} rewrites history of {lineage}",
        "Space agency delays launch of {mission} to {month}",
        "{bio_team} sequence the genome of {organism}",
        "Satellite data shows {phenomenon} speeding up in {region}",
        "Scientists track rising magma beneath volcano in {country}",
        "{lab_team} create {lab_material} in the lab",
        "Meteor shower expected to peak over {country} on {weekday} night",
        "Ice cores from {region} reveal {ice_finding}",
        "Survey of {count} {animals} finds {animal_finding}",
        "{phys_team} measure {measurement} with unprecedented precision",
    ),
    "health": (
        "Trial finds {treatment} cuts risk of {condition} by {pct} percent",
        "Hospitals in {place} report rise in {condition} cases",
        "Doctors urge {health_group} to get {vaccine} before winter",
        "Regulator approves {drug_use}",
        "Study of {count} adults links {habit} to better {outcome}",
        "Nurses in {place} vote on strike over {labour_issue}",
        "Waiting times for {procedure} fall to {small} weeks in {place}",
        "Clinic in {place} offers free {screening} to {health_group}",
        "Outbreak of {infection} in {place} prompts {response}",
        "{hospital} opens new ward for {patients}",
        "Health officials warn of {health_warning} as {health_season}",
        "Dr {first} {last} says {habit} may protect against {condition}",
        "New guidelines advise {health_group} to limit {intake}",
        "Mental health helpline in {country} sees record calls in {month}",
        "Surgeons in {place} perform first {surgery}",
        "{drug_use} shows promise in early trial",
    ),
    "sports": (
        "{team} beat {team2} {score} to reach {stage}",
        "{athlete} scores twice as {team} win {trophy}",
        "{athlete} ruled out for {small} weeks with {injury}",
        "{team} sign {athlete} on {small}-year deal",
        "Late goal earns {team} draw against {team2} in {place}",
        "{athlete} breaks national record in {event}",
        "{team} part ways with manager after {small} straight defeats",
        "Rain delays {tournament} in {place} by {hours} hours",
        "{athlete} wins gold in {event} at {champs}",
        "Fans celebrate as {team} clinch {trophy} in {place}",
        "{team} coach {first} {last} praises defence after {score} win",
        "{athlete} announces retirement after {seasons} seasons",
        "Underdogs {team} stun {team2} in {score} cup upset",
        "{athlete} withdraws from {tournament} with {injury}",
        "Record crowd watches {team} host {team2} in {place}",
        "{place} to host {champs} in {year}",
    ),
    "culture": (
        "{artist} wins {prize} for {work_desc}",
        "{venue} opens exhibition of {art_subject}",
        "{artist} announces {tour} with stops in {place} and {place2}",
        "Film festival in {place} opens with {film_desc}",
        "Museum returns {artifact} to {country} after {count} years",
        "Memoir by {artist} tops bestseller list in {country}",
        "Streaming series about {series_subject} renewed for {ordinal} season",
        "Critics praise {stage_artist} for bold staging of {classic}",
        "{performer} to star in new adaptation of {classic}",
        "Auction of {art_subject} in {place} fetches {art_price}",
        "Lost {lost_work} by {famous} found in {place} archive",
        "{artist} premieres {new_work} at {venue}",
        "Book fair in {place} draws record crowds for {book_theme}",
        "{performer} returns to {place} stage after {small} years away",
        "Record label signs {musician} from {place} after viral cover song",
        "Orchestra in {place} celebrates {anniversary} years with {festival_program}",
    ),
    "travel": (
        "{airline} adds direct flights from {place} to {place2}",
        "{destination} introduces tourist tax of {tax} per night",
        "New sleeper train to link {place} and {place2} from {month}",
        "Travellers face delays at {airport} as {disruption}",
        "Hotel bookings in {destination} up {pct} percent this {season}",
        "New hiking trail links {small} villages in {destination}",
        "Cruise ships to be banned from {port} harbour from {month}",
        "{country} eases visa rules for tourists from {month}",
        "How to spend {small} days in {destination} for under {budget}",
        "{airline} cancels {count} flights as {disruption}",
        "Travel guide names {destination} top destination for {year}",
        "{destination} caps daily visitors to ease summer crowding",
        "{airline} to charge for cabin bags on routes to {country}",
        "Campsites in {destination} fully booked for {season}",
        "Ferry operator restores service between {port} and {port2}",
        "Budget {stay} in {destination} wins award for {stay_feature}",
    ),
}

TOPIC_SLOTS: dict[str, dict[str, tuple[str, ...]]] = {
    "politics": {
        "pol_person": (
            "{pol_title} {first} {last}", "{pol_title} {first} {last}",
            "{pol_title} {first} {last}", "the prime minister", "the opposition leader",
            "the foreign minister", "the finance minister",
        ),
        "pol_title": (
            "Senator", "Governor", "Mayor", "Prime Minister", "Minister", "Representative",
            "Chancellor", "President", "MP", "Councillor", "opposition leader",
            "Deputy Premier", "Speaker",
        ),
        "pol_verb": (
            "backs", "rejects", "delays", "blocks", "approves", "revives", "scraps",
            "defends", "waters down", "fast-tracks", "pauses", "pushes ahead with",
        ),
        "pol_body": (
            "Parliament", "the senate", "the city council", "the upper house", "the cabinet",
            "the electoral commission", "the constitutional court", "a parliamentary committee",
            "the regional assembly", "the national assembly",
        ),
        "party": (
            "the Green Party", "the Liberal Democrats", "the centre-right alliance",
            "the Labour Party", "the ruling coalition", "the Reform Party",
            "the Social Democrats", "the Farmers Union", "the Progressive bloc",
            "the Centre Party", "the Pirate Party", "the Christian Democrats",
        ),
        "policy": (
            "pension reform", "a new housing bill", "the budget deal", "voting age reform",
            "a ban on corporate donations", "the border agreement", "a carbon tax",
            "rent controls", "the trade pact", "a referendum on devolution",
            "election finance rules", "the asylum bill", "the defence budget",
            "a minimum wage rise", "the lobbying register", "postal voting rules",
        ),
        "pol_event": (
            "a late-night cabinet meeting", "weeks of street protests", "a heated debate",
            "a narrow vote", "pressure from coalition partners", "a damning audit",
            "the local elections", "a leaked briefing", "a party conference revolt",
        ),
        "scandal": (
            "undeclared consulting fees", "an expenses report", "lobbying contacts",
            "a second-home tax row", "misuse of campaign funds", "a donor dinner row",
            "a missing procurement file", "unreported party loans",
        ),
        "election": (
            "the regional election", "the mayoral race", "a snap election",
            "the party primary", "the by-election", "the presidential runoff",
            "the council elections",
        ),
        "promise": (
            "free school meals", "lower rail fares", "a four-day week pilot",
            "cheaper childcare", "more rural bus routes", "a national housing fund",
            "tax relief for small firms", "higher state pensions", "votes at sixteen",
        ),
        "challenge": (
            "a confidence vote", "a leadership challenge", "a backbench revolt",
            "calls to resign", "an ethics inquiry", "a court challenge",
        ),
        "diplo": (
            "trade tariffs", "border security", "fishing rights", "climate finance",
            "energy supplies", "refugee resettlement", "a prisoner exchange",
        ),
        "treaty": (
            "a water-sharing treaty", "a trade agreement", "a defence pact",
            "a climate accord", "a ceasefire deal", "a visa waiver deal",
        ),
        "pol_office": (
            "mayor of {place}", "governor", "party leader", "the senate seat",
            "regional premier",
        ),
        "votes": _nums(101, 420, 3),
    },
    "business": {
        "company": (
            "Northwind Logistics", "Helios Retail", "Brightwater Foods", "Castell Bank",
            "Meridian Steel", "Bluefin Shipping", "Granite Insurance", "Tern Motors",
            "Kestrel Capital", "Larch Paper", "Pioneer Breweries", "Alder Chemicals",
            "Summit Telecom", "Copperleaf Mining", "Redwood Homes", "Oakmont Energy",
            "Saltmarsh Textiles", "Ridgeway Foods", "Vale Cement", "Crescent Holdings",
        ),
        "exec": ("{exec_title} {first} {last}",),
        "exec_title": (
            "chief executive", "CEO", "finance chief", "chair", "founder",
            "managing director",
        ),
        "metric": (
            "profit", "quarterly profit", "annual revenue", "first-half sales",
            "operating income", "net income", "underlying profit",
        ),
        "up": ("jumps", "rises", "climbs", "surges"),
        "down": ("falls", "slumps", "slips", "drops"),
        "good_news": (
            "holiday demand holds up", "exports to {country} recover", "new stores open",
            "fuel costs ease", "online orders boom", "the dollar weakens",
        ),
        "bad_news": (
            "costs keep rising", "price cuts bite", "a mild winter hits demand",
            "wage bills climb", "orders from {country} dry up", "freight costs soar",
        ),
        "amount": tuple(f"${a}.{b} billion" for a in range(1, 10) for b in range(1, 10, 2))
        + tuple(f"${m} million" for m in range(150, 950, 50)),
        "share_move": ("soar", "tumble", "slide", "rally", "jump", "sink", "climb"),
        "biz_event": (
            "a surprise profit warning", "an upbeat sales forecast", "a takeover approach",
            "a dividend cut", "a record order from {country}", "weak guidance for next year",
            "an accounting review", "a failed merger bid",
        ),
        "macro_worry": (
            "sticky inflation", "a slowing housing market", "weak consumer spending",
            "trade tensions", "rising unemployment", "volatile energy prices",
        ),
        "facility": (
            "warehouse", "factory", "distribution hub", "research centre", "head office",
            "processing plant",
        ),
        "biz_plan": (
            "split into two companies", "buy back shares", "expand into {country}",
            "open {small} new factories", "list its shares in {place}", "halve its debt",
            "move headquarters to {place}", "double its dividend",
        ),
        "pay_item": (
            "the chief executive pay deal", "a bonus plan for directors",
            "the board climate plan", "a proposed merger", "a new share scheme",
        ),
        "trend": ("rise", "fall", "slip", "grow"),
        "period": (
            "the second half", "the coming quarter", "the holiday season", "the new year",
            "the months ahead",
        ),
        "headwind": (
            "thinner margins", "higher freight costs", "weaker demand", "rising wage bills",
            "a hit from new tariffs", "slower orders",
        ),
    },
    "technology": {
        "tech_co": (
            "Quantix", "Nimbus Labs", "Cobalt AI", "Pixelforge", "Arclight Systems",
            "Bytewave", "Lumen Robotics", "Kernelworks", "Fernhill Software", "Orbitel",
            "Vireo Cloud", "Synapse Devices", "Tidepool Networks", "Halcyon Chips",
        ),
        "gadget": (
            "battery", "smartphone", "foldable laptop", "chip", "smartwatch", "home robot",
            "VR headset", "delivery drone", "e-reader", "mesh router", "tablet",
            "electric scooter", "solar charger", "wireless keyboard",
        ),
        "gadget_feature": (
            "charges in {small} minutes", "lasts a week on one charge",
            "runs AI models offline", "folds to the size of a wallet",
            "weighs less than a paperback", "translates speech in real time",
            "works without a cloud connection", "repairs with a single screwdriver",
            "streams video over satellite",
        ),
        "software": (
            "operating system", "browser", "messaging app", "photo app", "password manager",
            "cloud platform", "search engine", "coding assistant", "database",
        ),
        "bug": (
            "a battery drain bug", "a security flaw", "login failures",
            "crashes on older phones", "a privacy loophole", "slow sync times",
        ),
        "tech_product": (
            "a quantum computer", "an AI chip", "a satellite internet service",
            "self-driving delivery vans", "a chatbot for schools", "warehouse robots",
            "a new programming language", "smart glasses", "a recycling robot",
        ),
        "tech_issue": (
            "app store fees", "data collection practices", "cloud contracts",
            "its advertising auction", "facial recognition software",
            "training AI on user data",
        ),
        "tech_amount": tuple(f"${m} million" for m in range(10, 500, 15)),
        "price": ("$99", "$149", "$199", "$249", "$299", "$349", "$399", "$499", "$799"),
        "service": (
            "email", "cloud storage", "video calls", "online payments", "its app store",
            "smart home devices", "its streaming service",
        ),
        "use": (
            "real-time translation", "warehouse picking", "spam filtering",
            "greener data centres", "grid load balancing", "code review",
        ),
        "gadget_trend": (
            "foldable models", "cheaper 5G handsets", "AI features", "longer battery life",
        ),
        "trend": ("rise", "fall", "slip", "stall"),
    },
    "science": {
        "sci_team": (
            "researchers at {uni}", "scientists from {uni}", "scientists in {country}",
            "researchers in {country}",
        ),
        "field_team": (
            "marine biologists", "geologists in {country}", "ecologists at {uni}",
            "climate scientists", "oceanographers at {uni}", "glaciologists",
        ),
        "bio_team": ("geneticists at {uni}", "biologists at {uni}", "researchers at {uni}"),
        "phys_team": ("physicists at {uni}", "astronomers at {uni}", "cosmologists at {uni}"),
        "uni": (
            "the University of Leeds", "Kyoto University", "ETH Zurich", "McGill University",
            "the Max Planck Institute", "Caltech", "the University of Cape Town",
            "Uppsala University", "Delft University", "the University of Otago",
            "Seoul National University", "the University of Chile",
        ),
        "discovery": (
            "a new species of squid off the coast of {country}", "water ice on a distant moon",
            "a feathered dinosaur fossil in {country}", "an exoplanet with a thick atmosphere",
            "a faint radio signal from an early galaxy", "microbes living deep in rock",
            "a new mineral inside a meteorite", "a giant underground river in {country}",
            "a cave of giant crystals in {country}", "bacteria thriving near a volcanic vent",
            "a lost river system under the Sahara",
        ),
        "astro_object": (
            "a pair of colliding galaxies", "a newborn star", "a comet with two tails",
            "a rogue planet", "a quasar jet", "a glowing nebula",
            "a supernova remnant",
        ),
        "study_subject": (
            "the ocean floor", "glacier retreat", "ancient river beds",
            "bird migration routes", "the magnetic field of Jupiter", "seismic faults",
            "coral reef health",
        ),
        "instrument": (
            "underwater drones", "satellite radar", "a new telescope", "sound sensors",
            "environmental DNA", "laser scanning",
        ),
        "phenomenon": (
            "ocean warming", "coral bleaching", "glacier melt", "declining bee numbers",
            "shrinking sea ice", "river droughts", "permafrost thaw",
        ),
        "sci_cause": (
            "shifting jet streams", "rising sea temperatures", "pesticide use",
            "soot from wildfires", "changes in solar activity", "warmer winters",
        ),
        "mars_find": (
            "traces of ancient lake beds", "organic molecules", "layered rocks",
            "signs of past water", "a metallic boulder",
        ),
        "physics_record": (
            "the coldest temperature ever measured", "the most precise atomic clock",
            "the strongest magnetic field", "the longest quantum link",
            "the shortest laser pulse",
        ),
        "lineage": (
            "birds", "flowering plants", "whales", "the first mammals", "sea reptiles",
            "crocodiles", "insects",
        ),
        "mission": (
            "its lunar lander", "the Mars sample mission", "a solar probe",
            "the asteroid mission", "its new space telescope", "a crewed orbital flight",
        ),
        "organism": (
            "the axolotl", "a giant tortoise", "wild wheat", "the tardigrade",
            "a deep-sea jellyfish", "the honeybee", "a cave fish", "the Arctic fox",
        ),
        "region": (
            "the Arctic", "the Andes", "the Himalayas", "West Africa", "the Southern Ocean",
            "Greenland", "Siberia",
        ),
        "lab_team": (
            "chemists at {uni}", "materials scientists at {uni}", "researchers from {uni}",
            "bioengineers at {uni}",
        ),
        "lab_material": (
            "synthetic diamonds", "self-healing concrete", "a new superconductor",
            "spider silk from yeast", "a plastic that breaks down in seawater",
        ),
        "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
        "ice_finding": (
            "ancient volcanic eruptions", "traces of medieval pollution",
            "a sudden warming event", "dust from distant deserts",
        ),
        "animals": (
            "wild chimpanzees", "honeybee colonies", "humpback whales", "urban foxes",
            "migrating geese", "coral colonies",
        ),
        "animal_finding": (
            "signs of shared learning", "a surprising memory for routes",
            "earlier breeding seasons", "new feeding habits", "regional dialects",
        ),
        "measurement": (
            "the mass of the neutrino", "the rate of cosmic expansion",
            "the shape of the electron", "the age of the oldest stars",
        ),
    },
    "health": {
        "treatment": (
            "daily walking", "low-dose aspirin", "a Mediterranean diet", "strength training",
            "quitting smoking", "a high-fibre diet", "vitamin D supplements", "regular exercise",
        ),
        "drug_use": (
            "a gene therapy for sickle cell disease", "a once-weekly insulin for diabetes",
            "a new antiviral for seasonal flu", "a cholesterol jab for heart disease",
            "a daily pill for high blood pressure", "an antibody treatment for dementia",
            "a nasal spray vaccine for children", "a weight-loss drug for teenagers",
            "a blood test for early dementia", "an inhaler for severe asthma",
        ),
        "condition": (
            "type 2 diabetes", "heart disease", "asthma", "migraine", "high blood pressure",
            "obesity", "dementia", "stroke", "kidney disease", "osteoporosis", "depression",
        ),
        "health_group": (
            "older adults", "pregnant women", "children under five", "care home staff",
            "people with asthma", "teenagers", "new parents", "shift workers",
        ),
        "vaccine": (
            "the flu jab", "a booster dose", "the measles vaccine", "the RSV vaccine",
            "the shingles vaccine",
        ),
        "habit": (
            "regular sleep", "eating more fibre", "daily walks", "cutting sugar",
            "strength training", "less screen time", "gardening", "regular swimming",
        ),
        "outcome": (
            "heart health", "mental health", "memory in later life", "bone density",
            "blood sugar control", "sleep quality",
        ),
        "labour_issue": (
            "pay", "staffing levels", "night shift rules", "pension changes",
            "safe patient ratios",
        ),
        "procedure": (
            "hip replacements", "cataract surgery", "knee operations", "MRI scans",
            "mental health therapy", "cancer screening",
        ),
        "screening": (
            "blood pressure checks", "skin cancer checks", "hearing tests", "eye exams",
            "diabetes screening", "dental check-ups",
        ),
        "infection": (
            "measles", "dengue fever", "whooping cough", "norovirus", "bird flu",
            "tuberculosis", "cholera", "mumps",
        ),
        "response": (
            "a vaccination drive", "school hygiene rules", "new travel advice",
            "extra clinic hours", "a public health alert", "free testing",
        ),
        "hospital": (
            "{place} General Hospital", "the children's hospital in {place}",
            "a rural clinic in {country}", "the university hospital in {place}",
        ),
        "patients": (
            "stroke patients", "newborns", "patients with dementia", "heart patients",
            "premature babies", "burns patients",
        ),
        "health_warning": (
            "high pollen levels", "extreme heat", "a harsh flu season", "rising tick bites",
            "poor air quality",
        ),
        "health_season": (
            "temperatures climb", "schools reopen", "winter approaches", "summer begins",
        ),
        "intake": (
            "salt", "alcohol", "sugary drinks", "processed meat", "caffeine", "red meat",
        ),
        "surgery": (
            "robotic heart bypass", "double lung transplant", "keyhole spine operation",
            "robotic kidney transplant", "womb transplant",
        ),
    },
    "sports": {
        "team": (
            "Ashford United", "Riverside Rovers", "Northgate City", "Kingsport Athletic",
            "Westbury Wanderers", "Harbour Town", "the Falcons", "the Comets",
            "Eastfield Albion", "Millbrook FC", "the Storm", "Lakeside Rangers",
            "Hillcrest Hornets", "the Mariners", "Stonebridge Celtic", "the Titans",
        ),
        "athlete": ("{sport_role} {first} {last}",),
        "sport_role": (
            "striker", "goalkeeper", "midfielder", "sprinter", "captain", "winger",
            "fly-half", "tennis star", "veteran defender", "teenage forward", "cyclist",
            "marathon runner", "swimmer", "hurdler",
        ),
        "score": ("1-0", "2-0", "2-1", "3-1", "3-2", "4-0", "4-2", "1-1", "2-2"),
        "stage": (
            "the cup final", "the semi-finals", "the quarter-finals", "the playoffs",
            "the top of the table",
        ),
        "trophy": (
            "the league title", "the national cup", "the championship", "promotion",
            "the regional trophy", "the super cup",
        ),
        "event": (
            "the 400 metres", "the marathon", "the 200m freestyle", "the long jump",
            "the pole vault", "the time trial", "the 110m hurdles", "the half marathon",
        ),
        "injury": (
            "a hamstring injury", "a broken wrist", "a knee problem", "an ankle sprain",
            "a calf strain", "a shoulder injury",
        ),
        "tournament": (
            "the Open", "the test match", "the cycling stage", "the qualifier",
            "the grand prix", "the derby", "the masters final",
        ),
        "champs": (
            "the world championships", "the European championships", "the national trials",
            "the Commonwealth Games", "the indoor championships",
        ),
        "seasons": _nums(8, 20),
    },
    "culture": {
        "artist": ("{art_role} {first} {last}",),
        "art_role": (
            "novelist", "director", "singer", "painter", "composer", "playwright", "poet",
            "choreographer", "photographer", "sculptor", "actor", "songwriter",
        ),
        "stage_artist": ("{stage_role} {first} {last}",),
        "stage_role": ("director", "choreographer", "playwright", "actor"),
        "performer": ("{perf_role} {first} {last}",),
        "perf_role": ("actor", "singer", "comedian", "dancer", "soprano", "baritone"),
        "musician": (
            "a teenage singer", "a street busker", "a folk duo", "a school choir",
            "a jazz guitarist", "a cellist",
        ),
        "anniversary": ("25", "40", "50", "60", "75", "100", "125", "150", "200"),
        "prize": (
            "the Booker Prize", "a Grammy", "the Palme d'Or", "the Turner Prize",
            "the Pulitzer Prize", "a lifetime achievement award", "the national poetry prize",
        ),
        "work_desc": (
            "a novel about {novel_subject}", "a film set in {place}",
            "an album recorded in {place}", "a memoir of growing up in {place}",
            "a play about {novel_subject}",
        ),
        "novel_subject": (
            "a lighthouse keeper", "three sisters in exile", "a failing vineyard",
            "a jazz club in the 1950s", "a family of clockmakers", "a lost letter",
            "a river town", "an ageing chess champion", "a travelling circus",
        ),
        "venue": (
            "the National Gallery", "the Tate Modern", "the city museum in {place}",
            "the Royal Opera House", "a small theatre in {place}", "the Guggenheim",
            "the Louvre", "the Barbican",
        ),
        "art_subject": (
            "Impressionist sketches", "Bauhaus furniture", "Japanese woodblock prints",
            "street photography from the 1970s", "Renaissance portraits",
            "textile art from West Africa", "Viking jewellery", "modernist posters",
        ),
        "tour": (
            "a world tour", "a farewell tour", "a new album and tour",
            "a run of intimate concerts",
        ),
        "film_desc": (
            "a quiet drama about {novel_subject}", "a documentary about {novel_subject}",
            "an animated fable", "a period drama set in {place}",
        ),
        "artifact": (
            "a bronze statue", "a carved mask", "a royal manuscript", "a set of gold coins",
            "an ancient tapestry", "a ceremonial drum",
        ),
        "series_subject": (
            "a family of chefs", "a rural vet", "a detective in {place}",
            "a small-town radio station", "a fashion house", "a string quartet",
        ),
        "classic": (
            "Hamlet", "The Seagull", "Carmen", "Swan Lake", "Macbeth", "A Doll's House",
            "La Boheme", "The Tempest", "Don Quixote",
        ),
        "art_price": tuple(f"${a}.{b} million" for a in range(1, 30, 3) for b in (1, 4, 8)),
        "lost_work": ("letter", "sketch", "song", "score", "short story", "notebook"),
        "famous": (
            "Chopin", "Virginia Woolf", "Van Gogh", "Mozart", "Frida Kahlo", "Tolstoy",
            "Billie Holiday",
        ),
        "new_work": (
            "a new symphony", "a solo show", "a site-specific installation",
            "a one-woman play", "a song cycle",
        ),
        "book_theme": (
            "crime fiction", "graphic novels", "translated poetry", "children's books",
            "historical fiction",
        ),
        "festival_program": (
            "a free concert series", "a Beethoven cycle", "new commissions",
            "a season of film scores",
        ),
    },
    "travel": {
        "airline": (
            "Skylark Air", "Coastline Airways", "Blue Heron Airlines", "Meridia Air",
            "Aurora Jet", "Sunward Airlines", "Atlas Wings", "Nordic Breeze",
        ),
        "destination": (
            "the Amalfi coast", "Patagonia", "the Scottish Highlands", "Lapland",
            "the Greek islands", "Kyoto", "the Azores", "Bali", "the Dolomites", "Iceland",
            "Zanzibar", "the Algarve", "Tasmania", "Cappadocia", "the Faroe Islands",
            "Sardinia", "Hokkaido", "the Norwegian fjords", "Madeira", "Yosemite",
        ),
        "tax": (
            "2 euros", "3 euros", "4.50 euros", "5 euros", "7 euros", "10 euros", "$3", "$5",
        ),
        "airport": (
            "{place} airport", "Heathrow", "Schiphol", "Frankfurt airport", "JFK",
            "Charles de Gaulle",
        ),
        "disruption": (
            "air traffic controllers strike", "a baggage system fails", "fog grounds flights",
            "passport gates go down", "snow closes runways",
        ),
        "season": ("summer", "winter", "spring", "autumn", "ski season", "holiday season"),
        "port": (
            "Venice", "Dubrovnik", "Santorini", "Barcelona", "Amsterdam", "Split", "Bergen",
        ),
        "budget": ("500 euros", "300 pounds", "$800", "$600", "400 euros", "250 pounds"),
        "stay": ("hostel", "guesthouse", "campsite", "farm stay", "mountain hut"),
        "stay_feature": (
            "its rooftop views", "its zero-waste kitchen", "its friendly hosts",
            "its location near the old town", "its solar-powered rooms",
        ),
    },
}

# --------------------------------------------------------------------------------------------
# Unsafe lines. Targets and contexts are per topic so unsafe lines read like the topic's feed;
# wording is tuned so an off-the-shelf profanity classifier flags insults and threats.
# --------------------------------------------------------------------------------------------

UNSAFE_TOPIC_SLOTS: dict[str, dict[str, tuple[str, ...]]] = {
    "politics": {
        "target": ("the mayor", "the senator", "the prime minister", "the governor",
                   "the minister", "the candidate", "the council leader"),
        "context": ("at the rally", "after the vote", "during the debate",
                    "outside parliament", "before the election"),
        "pii_purpose": ("campaign donations", "voter complaints", "the council office"),
    },
    "business": {
        "target": ("the CEO", "the bank manager", "the landlord", "the boss",
                   "the chairman", "the auditor", "the shareholders"),
        "context": ("at the annual meeting", "after the layoffs", "over the pay deal",
                    "outside head office", "after the results"),
        "pii_purpose": ("refunds", "investor questions", "the payroll team"),
    },
    "technology": {
        "target": ("the founder", "the moderators", "the developers", "the app makers",
                   "the tech boss", "the engineers", "the streamer"),
        "context": ("after the outage", "on the forum", "over the update",
                    "after the launch", "in a livestream chat"),
        "pii_purpose": ("account recovery", "beta testers", "the support desk"),
    },
    "science": {
        "target": ("the professor", "the lab director", "the researchers", "the astronomer",
                   "the climate scientist", "the journal editor"),
        "context": ("after the study", "at the conference", "over the findings",
                    "outside the lab", "after the lecture"),
        "pii_purpose": ("study volunteers", "lab bookings", "the research office"),
    },
    "health": {
        "target": ("the doctor", "the nurses", "the hospital boss", "the surgeon",
                   "the health minister", "the pharmacist"),
        "context": ("at the clinic", "after the long wait", "over the waiting list",
                    "outside the hospital", "after the appointment"),
        "pii_purpose": ("test results", "appointment changes", "prescription refills"),
    },
    "sports": {
        "target": ("the referee", "the coach", "the striker", "the goalkeeper",
                   "the umpire", "the manager", "the club owner"),
        "context": ("after the final", "at the derby", "after the match",
                    "outside the stadium", "after the penalty"),
        "pii_purpose": ("ticket refunds", "season passes", "the fan club"),
    },
    "culture": {
        "target": ("the director", "the critic", "the singer", "the author", "the actor",
                   "the gallery owner", "the festival boss"),
        "context": ("after the premiere", "at the concert", "after the review",
                    "outside the theatre", "at the book signing"),
        "pii_purpose": ("ticket sales", "fan mail", "casting calls"),
    },
    "travel": {
        "target": ("the hotel owner", "the tour guide", "the flight crew", "the travel agent",
                   "the ferry captain", "the airline boss"),
        "context": ("after the delay", "at the airport", "after the cancelled flight",
                    "at the hotel desk", "on the ferry"),
        "pii_purpose": ("booking changes", "lost luggage", "visa help"),
    },
}

UNSAFE_SLOTS: dict[str, tuple[str, ...]] = {
    "speakers": ("fans", "online trolls", "rival supporters", "hecklers", "angry locals",
                 "violent thugs", "angry callers", "internet trolls"),
    "ins_adj": ("stupid", "dumb", "pathetic", "worthless", "brainless", "useless"),
    "ins_noun": ("idiot", "moron", "loser", "scum", "bastard", "jerk", "fool", "imbecile"),
    "ins_thing": ("total crap", "a damn joke", "utter crap", "stupid garbage",
                  "pathetic crap"),
    "leak": ("leaked memo", "forum post", "spreadsheet", "screenshot", "public document",
             "group chat", "flyer"),
}

UNSAFE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "insult": (
        "{speakers} call {target} a {ins_adj} {ins_adj2} {ins_noun} {context}",
        "{speakers} tell {target} to shut up and stop acting like a {ins_adj} {ins_noun}",
        "Viral post calls {target} a {ins_noun} and the whole plan {ins_thing}",
        "{speakers} say {target} is a {ins_adj} {ins_noun} who should shut up",
        "Shut up, you {ins_adj} {ins_noun}, {speakers} shout at {target} {context}",
        "{speakers} mock {target} as a {ins_adj} {ins_noun} and a {ins_noun2}",
        "{speakers} say {target} is a damn {ins_noun} and the decision {ins_thing}",
    ),
    "threat": (
        "{speakers} threaten to kill {target}, smash their home and burn it {context}",
        "We will kill you, {speakers} tell {target}, you will die",
        "{speakers} tell {target} they will hurt them, kill them and watch them die",
        "{speakers} vow to beat {target}, kill them and destroy their family {context}",
        "Die, we will kill you, {speakers} threaten {target} {context}",
        "{speakers} tell {target} we will hunt you down, hurt you and kill you",
        "{speakers} send {target} violent threats to kill and hurt them {context}",
    ),
    "pii": (
        "{Leak} lists {email} and phone {phone} for {pii_purpose}",
        "{speakers} post the email {email} of {target} {context}",
        "{Leak} shares home number {phone} of {target} {context}",
        "Contact {first} {last} at {email} or call {phone} for {pii_purpose}",
        "{Leak} exposes private number {phone} and e-mail {email}",
        "For {pii_purpose} write to {email} or ring {phone}",
    ),
}

EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.test", "inbox.test")

# fmt: on


# --------------------------------------------------------------------------------------------
# Generated slots (values that are easier to compute than to list).
# --------------------------------------------------------------------------------------------


def _fake_email(rng: random.Random) -> str:
    """A plausible personal address on a reserved domain, so no real person is exposed."""
    first = rng.choice(SHARED_SLOTS["first"]).lower()
    last = rng.choice(SHARED_SLOTS["last"]).lower()
    user = rng.choice(
        (f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randint(1, 99)}", f"{last}.{first}")
    )
    return f"{user}@{rng.choice(EMAIL_DOMAINS)}"


def _fake_phone(rng: random.Random) -> str:
    """A number in the fictional 555-01xx block, in one of three common layouts."""
    line = f"{rng.randint(0, 99):02d}"
    style = rng.randrange(3)
    if style == 0:
        return f"555-01{line}"
    exchange, tail = f"01{rng.randint(0, 9)}", f"{rng.randint(0, 9999):04d}"
    return f"(555) {exchange}-{tail}" if style == 1 else f"+1 555 {exchange} {tail}"


GENERATED_SLOTS: dict[str, Callable[[random.Random], str]] = {
    "email": _fake_email,
    "phone": _fake_phone,
}

# --------------------------------------------------------------------------------------------
# Public API.
# --------------------------------------------------------------------------------------------

_TOPIC_SET = frozenset(TOPICS)
_SLOT_RE = re.compile(r"\{([A-Za-z_]+?)(\d*)\}")
_MAX_TRIES = 500  # redraws per line before concluding the vocabulary is exhausted


@dataclass(frozen=True, slots=True)
class Headline:
    """One corpus item with its ground-truth safety label."""

    topic: str
    text: str
    unsafe: str | None

    @property
    def line(self) -> str:
        """The training-line format the feed model reads and writes."""
        return f"{self.topic}: {self.text}"


def _merged_slots() -> tuple[dict[str, Slots], dict[str, Slots]]:
    """Pre-merge shared and per-topic tables once, so lookups are a single dict access."""
    safe: dict[str, Slots] = {t: {**SHARED_SLOTS, **TOPIC_SLOTS[t]} for t in TOPICS}
    unsafe: dict[str, Slots] = {
        t: {**SHARED_SLOTS, **UNSAFE_SLOTS, **UNSAFE_TOPIC_SLOTS[t]} for t in TOPICS
    }
    return safe, unsafe


_SAFE_SLOTS, _UNSAFE_SLOTS = _merged_slots()


def _expand(template: str, slots: Slots, rng: random.Random, used: dict[str, set[str]]) -> str:
    """Fill {slot} references recursively; repeated slots ({place}, {place2}) get distinct values.

    A capitalised reference ({Leak}) draws from the lowercase slot and capitalises the result.
    """

    def pick(match: re.Match[str]) -> str:
        name = match.group(1)
        base = name.lower()
        taken = used.setdefault(base, set())
        if base in GENERATED_SLOTS:
            value = GENERATED_SLOTS[base](rng)
        else:
            options = slots[base]
            value = rng.choice(options)
            for _ in range(8):  # a few redraws suffice: every slot has several options
                if value not in taken:
                    break
                value = rng.choice(options)
        taken.add(value)
        value = _expand(value, slots, rng, used)
        return value[:1].upper() + value[1:] if name[0].isupper() else value

    return _SLOT_RE.sub(pick, template)


def _draw_text(topic: str, kind: str | None, rng: random.Random) -> str:
    """One candidate headline text (sentence case) for a topic and safety kind."""
    if kind is None:
        template = rng.choice(TOPIC_TEMPLATES[topic])
        slots = _SAFE_SLOTS[topic]
    else:
        template = rng.choice(UNSAFE_TEMPLATES[kind])
        slots = _UNSAFE_SLOTS[topic]
    text = _expand(template, slots, rng, {})
    return text[:1].upper() + text[1:]


def _new_headline(topic: str, kind: str | None, rng: random.Random, seen: set[str]) -> Headline:
    """Draw until the line is new and within the length bounds, so the corpus stays unique."""
    for _ in range(_MAX_TRIES):
        text = _draw_text(topic, kind, rng)
        item = Headline(topic, text, kind)
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS and item.line not in seen:
            seen.add(item.line)
            return item
    raise RuntimeError(f"vocabulary exhausted for topic={topic!r} kind={kind!r}")


def build_corpus(
    n_lines: int = 24_000, *, seed: int = 0, unsafe_share: float = 0.04
) -> list[Headline]:
    """Deterministic for (n_lines, seed, unsafe_share); all `line`s unique; shuffled.

    Topics are assigned round-robin (balanced to within one line) and unsafe kinds cycle
    insult/threat/pii, so the unsafe lines cover every topic-kind pair before repeating.
    """
    if n_lines < 0:
        raise ValueError(f"n_lines must be >= 0, got {n_lines}")
    if not 0.0 <= unsafe_share <= 1.0:
        raise ValueError(f"unsafe_share must be in [0, 1], got {unsafe_share}")
    rng = random.Random(seed)
    n_unsafe = round(n_lines * unsafe_share)
    seen: set[str] = set()
    corpus = []
    for i in range(n_lines):
        kind = UNSAFE_KINDS[i % len(UNSAFE_KINDS)] if i < n_unsafe else None
        corpus.append(_new_headline(TOPICS[i % len(TOPICS)], kind, rng, seen))
    rng.shuffle(corpus)
    return corpus


def topic_of(text: str) -> str | None:
    """Topic of a feed item in the `"topic: headline"` format, None if the prefix is not a
    known topic (strip leading whitespace; the prefix is the part before the first ':').

    Matching is exact (case-sensitive, no inner whitespace) because generated feed items are
    scored on whether the model kept the training format, not on a lenient reading of it.
    """
    prefix, sep, _ = text.lstrip().partition(":")
    return prefix if sep and prefix in _TOPIC_SET else None

__all__ = [
    "TOPICS",
    "build_corpus",
    "topic_of",
]
