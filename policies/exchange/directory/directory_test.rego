package exchange.directory_test

import rego.v1

import data.exchange.directory
import data.exchange.fixtures_test as fixtures

test_directory_readable_by_clients if {
	d := fixtures.ask_unattached(fixtures.clinic_b, "search", ["Organization"])
	d.allow
	"directory" in d.reasons
}

test_the_directory_is_not_written_through_this_road if {
	asked := object.union(fixtures.input_of(fixtures.clinic_b, "create", ["Organization"], []), {"resident": null})
	directory.types == set() with input as asked
}

test_the_directory_is_only_organizations if {
	asked := object.union(fixtures.input_of(fixtures.clinic_b, "search", ["Organization", "Patient"], []), {"resident": null})
	directory.types == {"Organization"} with input as asked
}

test_a_scope_naming_the_directory_type_writes_it if {
	registrar := object.union(fixtures.clinic_b, {"scopes": [{"text": "system/Practitioner.cu", "context": "system", "resource_type": "Practitioner", "interactions": "cu"}]})
	asked := object.union(fixtures.input_of(registrar, "create", ["Practitioner"], []), {"resident": null})
	directory.types == {"Practitioner"} with input as asked
	deleting := object.union(fixtures.input_of(registrar, "delete", ["Practitioner"], []), {"resident": null})
	directory.types == set() with input as deleting
}
