// Progressive enhancement of the upload form: a preview, drag-and-drop, the size and type checked at once (the
// server's limits, as the form states them), and the photo scaled down in the browser before it is sent, so a
// phone sends a few hundred kB instead of its 4-12 MB original. Without this script the form still posts the chosen
// photo, as it is, to /predict and the server answers with the result or error page.
(function () {
  'use strict';
  // Comfortably above what the model (its view is at most a few hundred pixels) and the result page need.
  var MAX_SIDE = 1280;
  var JPEG_QUALITY = 0.85;

  var form = document.getElementById('upload');
  var input = document.getElementById('file');
  var drop = document.getElementById('drop');
  var preview = document.getElementById('preview');
  var status = document.getElementById('status');
  if (!form || !input || !drop || !preview || !status) return;
  var maxBytes = Number(form.getAttribute('data-max-bytes')) || Infinity;
  var accepted = (input.getAttribute('accept') || '').split(',');
  var button = form.querySelector('button');
  // The photo being made ready for sending: a promise of the file to send, or of a refusal's message.
  var preparing = null;

  function megabytes(bytes) {
    return (bytes / (1024 * 1024)).toFixed(1) + ' MB';
  }
  function kilobytes(bytes) {
    return Math.round(bytes / 1024) + ' kB';
  }

  function say(text, refused) {
    status.textContent = text;
    status.hidden = !text;
    status.classList.toggle('refused', !!refused);
    if (button) button.disabled = !!refused;
  }

  function show(file) {
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    drop.classList.add('has-photo');
  }

  /** What the server would refuse, said before anything is sent; null when it would take the file as it is. */
  function refusal(file) {
    if (accepted.indexOf(file.type) < 0) {
      return (
        'This file (' +
        (file.type || 'of unknown type') +
        ') is not a JPEG, PNG, WebP or GIF photo: choose another one.'
      );
    }
    if (file.size > maxBytes) {
      return (
        'This photo is ' +
        megabytes(file.size) +
        ', more than the ' +
        megabytes(maxBytes) +
        ' the server takes: choose a smaller one.'
      );
    }
    return null;
  }

  /**
   * The photo scaled so its long side is at most MAX_SIDE, as a JPEG, upright (EXIF orientation applied, as the
   * server would apply it), on white where it was transparent. Resolves with null when the browser cannot decode it
   * or scaling would not make it smaller: the original is then sent, if the server takes it.
   */
  function scaled(file) {
    if (!window.createImageBitmap || !/^image\//.test(file.type)) return Promise.resolve(null);
    return createImageBitmap(file, { imageOrientation: 'from-image' }).then(
      function (bitmap) {
        var scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
        if (scale === 1 && !refusal(file)) {
          bitmap.close();
          return null;
        }
        var canvas = document.createElement('canvas');
        canvas.width = Math.max(1, Math.round(bitmap.width * scale));
        canvas.height = Math.max(1, Math.round(bitmap.height * scale));
        var context = canvas.getContext('2d');
        context.fillStyle = '#fff';
        context.fillRect(0, 0, canvas.width, canvas.height);
        context.imageSmoothingQuality = 'high';
        context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
        var original = { width: bitmap.width, height: bitmap.height };
        bitmap.close();
        return new Promise(function (resolve) {
          canvas.toBlob(
            function (blob) {
              if (!blob || (blob.size >= file.size && !refusal(file))) return resolve(null);
              var name = file.name.replace(/\.[^.]*$/, '') + '.jpg';
              resolve({
                file: new File([blob], name, { type: 'image/jpeg', lastModified: file.lastModified }),
                original: original,
                width: canvas.width,
                height: canvas.height,
              });
            },
            'image/jpeg',
            JPEG_QUALITY,
          );
        });
      },
      function () {
        return null;
      },
    );
  }

  /** Puts the file into the input, so the ordinary form submission sends it. */
  function choose(file) {
    var transfer = new DataTransfer();
    transfer.items.add(file);
    input.files = transfer.files;
  }

  function prepare(file) {
    show(file);
    say('Preparing the photo…');
    preparing = scaled(file).then(function (result) {
      if (result) {
        choose(result.file);
        say(
          'Sending a ' +
            result.width +
            '×' +
            result.height +
            ' copy (' +
            kilobytes(result.file.size) +
            ') of your ' +
            result.original.width +
            '×' +
            result.original.height +
            ' photo (' +
            megabytes(file.size) +
            ').',
        );
        return true;
      }
      var problem = refusal(file);
      say(problem || '', !!problem);
      return !problem;
    });
  }

  input.addEventListener('change', function () {
    var file = input.files && input.files[0];
    if (file) prepare(file);
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
    choose(files[0]);
    prepare(files[0]);
  });
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var ready = preparing || Promise.resolve(true);
    ready.then(function (ok) {
      if (!ok) return;
      if (button) {
        button.disabled = true;
        button.textContent = 'Classifying…';
      }
      // submit() sends the form as the browser would, without firing this handler again.
      form.submit();
    });
  });
  // Coming back to the page (the back button restores it from the cache) finds the button as it was left.
  window.addEventListener('pageshow', function () {
    if (button && !status.classList.contains('refused')) {
      button.disabled = false;
      button.textContent = 'Classify';
    }
  });
})();
