# METADATA
# title: Data classes within a type
# description: >-
#   Where consents open only some categories of a type, or deny some, the obligation the
#   road applies to each resource of that type (exchange/fhir/data_classes.py reads it).
package exchange.data_classes

import rego.v1

# METADATA
# title: data_classes
# description: >-
#   Where consents open only some categories of a type, or deny some, the road keeps a
#   resource if one grant admits its categories and no resident-wide deny names one.
#   Types without an entry are released whole.
rules[t] := {"grants": grants_of(t), "except": veto_except(t)} if {
	data.exchange.request.client
	categories_named
	some t in data.exchange.consent.types | data.exchange.break_glass.types
	restricted(t)
}

# Without a category in any provision every grant is of whole types: nothing to compute.
categories_named if {
	some c in input.consents
	count(data.exchange.consent.categories_of(c.provision)) > 0
}

categories_named if {
	some c in input.consents
	some q in c.provision.provisions
	count(data.exchange.consent.categories_of(q)) > 0
}

grants_of(t) := sort({g |
	some c in input.consents
	data.exchange.consent.permits(c, t)
	g := grant(c.provision, t)
} | {g |
	t in data.exchange.break_glass.types
	g := {"only": null, "except": []}
})

grant(p, t) := {"only": null, "except": nested_except(p, t)} if data.exchange.consent.whole(p, t)

grant(p, t) := {"only": data.exchange.consent.part(p, t), "except": nested_except(p, t)} if {
	not data.exchange.consent.whole(p, t)
}

nested_except(p, t) := sort([cat |
	some q in p.provisions
	q.type == "deny"
	data.exchange.consent.deny_applies(q)
	some cat in data.exchange.consent.part(q, t)
])

veto_except(t) := sort([cat |
	some c in input.consents
	data.exchange.consent.active(c)
	c.provision.type == "deny"
	data.exchange.consent.deny_applies(c.provision)
	some cat in data.exchange.consent.part(c.provision, t)
])

unrestricted(t) if {
	t in data.exchange.break_glass.types
	count(veto_except(t)) == 0
}

unrestricted(t) if {
	count(veto_except(t)) == 0
	some c in input.consents
	data.exchange.consent.permits(c, t)
	data.exchange.consent.whole(c.provision, t)
	count(nested_except(c.provision, t)) == 0
}

restricted(t) if not unrestricted(t)
