"""The live inventory: hosts, containers, images, pods, listening ports, the network graph, package scans, drift."""
