// Progressive enhancement of the upload form: a preview and drag-and-drop. Without this script the form still
// posts the chosen photo to /predict and the server answers with the result page.
(function () {
  'use strict';
  var form = document.getElementById('upload');
  var input = document.getElementById('file');
  var drop = document.getElementById('drop');
  var preview = document.getElementById('preview');
  if (!form || !input || !drop || !preview) return;

  function show(file) {
    if (!file || !/^image\//.test(file.type)) return;
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    drop.classList.add('has-photo');
  }

  input.addEventListener('change', function () {
    show(input.files && input.files[0]);
  });
  ['dragenter', 'dragover'].forEach(function (type) {
    drop.addEventListener(type, function (event) {
      event.preventDefault();
      drop.classList.add('dragging');
    });
  });
  ['dragleave', 'drop'].forEach(function (type) {
    drop.addEventListener(type, function (event) {
      event.preventDefault();
      drop.classList.remove('dragging');
    });
  });
  drop.addEventListener('drop', function (event) {
    var files = event.dataTransfer && event.dataTransfer.files;
    if (!files || files.length === 0) return;
    // Putting the dropped file into the input lets the ordinary form submission send it.
    var transfer = new DataTransfer();
    transfer.items.add(files[0]);
    input.files = transfer.files;
    show(files[0]);
  });
  form.addEventListener('submit', function () {
    var button = form.querySelector('button');
    if (button) {
      button.disabled = true;
      button.textContent = 'Classifying…';
    }
  });
})();
